"""The stopping rule: converged (calm exploration and the error target met), or out of iterations or labels;
and, on resume, whether changed stop settings re-open a finished run."""

from __future__ import annotations

from mlpkit.workflows.active_learning.labelling import count_labels
from mlpkit.workflows.active_learning.train import Train


def error_targets(st, test: dict | None) -> tuple[bool, list[str]]:
    """(every error target of the stop settings ``st`` met on the test metrics ``test``, their texts); True with
    no texts when no target is set, False when one is set and there is no test set."""
    test = test or {}
    err_ok, err_txt = True, []
    if st.force_mae is not None:
        fm = test.get("forces_mae")
        err_ok &= fm is not None and fm <= st.force_mae
        err_txt.append(
            f"force MAE {fm * 1000:.1f} meV/Å (target {st.force_mae * 1000:.0f})" if fm is not None else "no test set"
        )
    if st.energy_mae_per_atom is not None:
        em = test.get("energy_mae_per_atom")
        err_ok &= em is not None and em <= st.energy_mae_per_atom
        err_txt.append(
            f"energy MAE {em * 1000:.2f} meV/atom (target {st.energy_mae_per_atom * 1000:.2f})"
            if em is not None
            else "no test set"
        )
    return err_ok, err_txt


def error_target_missed(st, test: dict | None) -> bool:
    """True when the stop settings ``st`` set an error target and the test set measured it as not met (False
    without a target or a test set: nothing says the committee is wrong where it is calm)."""
    test = test or {}
    fm, em = test.get("forces_mae"), test.get("energy_mae_per_atom")
    return (st.force_mae is not None and fm is not None and fm > st.force_mae) or (
        st.energy_mae_per_atom is not None and em is not None and em > st.energy_mae_per_atom
    )


def should_stop(run, i: int, metrics: dict) -> str:
    """The reason to stop after iteration ``i``'s exploration, or ''."""
    st = run.cfg.stop
    fractions = [run.state.result(f"iter{j}.explore").get("untrusted_fraction") for j in range(i + 1)]
    recent = fractions[-st.patience :]
    calm = len(recent) == st.patience and all(f is not None and f < st.candidate_fraction for f in recent)
    err_ok, err_txt = error_targets(st, metrics.get("test"))
    if calm and err_ok:
        return (
            f"converged: untrusted fraction of exploration below {st.candidate_fraction:g} for "
            f"{st.patience} iteration(s) ({', '.join(f'{f:.3f}' for f in recent)}) and "
            f"{'; '.join(err_txt) or 'no error target'}"
        )
    if i >= run.cfg.max_iterations:
        return (
            f"iteration cap ({run.cfg.max_iterations}) reached; untrusted fractions "
            f"{', '.join(f'{f:.3f}' for f in fractions if f is not None)}; {'; '.join(err_txt)}"
        )
    # the labels iteration i trained on, not the dataset's count now: a resumed run replays this rule for every
    # finished iteration, and the labels of later iterations must not stop it at an early one
    n_labels = metrics.get("n_labels")
    if n_labels is None:  # a state file from before iterations recorded it
        n_labels = count_labels(run.dataset, run.method)
    if n_labels >= run.cfg.label_budget:
        return f"label budget ({run.cfg.label_budget}) reached; {'; '.join(err_txt)}"
    return ""


def reconsider_stop(run, reason: str) -> tuple[int, str]:
    """(iteration to go on from, stop reason) for a run that had stopped, under the current settings.

    ``stop``, ``max_iterations`` and ``label_budget`` may change on resume: a tighter target, more
    iterations or a bigger budget re-open a finished run at its last iteration (its random-baseline curve,
    which depends on where AL ended, is recomputed; its labels are kept). Looser settings never move the
    stop earlier than where the run already is.
    """
    final = int(run.state.get("final_iteration", 0))
    now = should_stop(run, final, run.step(Train(final)))
    if now:
        return final, reason
    run.log(
        f"the stop settings changed since this run stopped after iteration {final} ({reason}); "
        f"going on from iteration {final}"
    )
    # clear the stop decision and the baseline points (they depend on where AL ends), in one atomic write
    run.state.forget(prefix="baseline.point", values=("stopped_because", "final_iteration", "finished"))
    return final, ""
