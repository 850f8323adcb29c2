from mlpkit.cli import main

main()
