"""The logistic regression of override on the information condition, on scripted studies
where the answer is known: an effect present (noisy info-sensitive policy), absent (noisy
rigid policy), and the degenerate cases (separation, fitted by Firth's penalized
likelihood; no variation; nothing parsed).

The scripted policies encode the expected behaviour, so these tests prove the pipeline
(study -> analysis frame -> statsmodels -> report), not the paper."""

from __future__ import annotations

import numpy as np
import pytest
from tinmen.agents.shopper.stats import PAPER_ANCHORS, PAPER_GPT35, firth_logit
from tinmen.graphs.shopper import study_plan
from tinmen.graphs.shopper_report import override_frame, regressions
from tinmen.graphs.study import run_study
from tinmen.models.pool import ModelPool
from tinmen.models.registry import resolve_spec
from tinmen.storage import Store

POLICIES = "scripted:tinmen.agents.shopper.scripted:"
NOISY_SENSITIVE, NOISY_RIGID = POLICIES + "NoisyInfoSensitivePolicy", POLICIES + "NoisyRigidPolicy"
ECHO = "scripted:tinmen.models.backends.scripted:EchoPolicy"


def _study(store: Store, names: list[str], reps: int, controls: bool = False) -> int:
    plan = study_plan(["car"], {n: resolve_spec(n) for n in names}, [0.2], reps=reps,
                      controls=controls)
    outcome = run_study(store, plan, pool=ModelPool(), progress=False)
    assert not outcome.failed
    return outcome.study_id


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('reg')}/tinmen.db")
    ids = {"noisy": _study(store, [NOISY_SENSITIVE, NOISY_RIGID], reps=15),
           "exact": _study(store, ["scripted:info-sensitive", "scripted:rigid"], reps=5),
           "echo": _study(store, [ECHO], reps=2)}
    yield store, ids
    store.close()


def _by_model(store: Store, study_id: int) -> dict[str, dict]:
    return {r["model"]: r for r in regressions(store, study_id)}


def _info_terms(reg: dict) -> dict[str, dict]:
    return {t["term"].split(" ")[0]: t for t in reg["terms"] if t["term"].startswith("info=")}


def test_override_frame_has_one_row_per_session_with_condition_params(studies):
    store, ids = studies
    frame = override_frame(store, ids["noisy"])
    assert len(frame) == 2 * 4 * 15 and frame["session_id"].is_unique
    assert set(frame["info"]) == {"both", "principal-only", "customer-only", "neither"}
    assert frame["override"].notna().all() and set(frame["override"]) == {0.0, 1.0}


def test_regression_detects_the_effect_when_the_policy_reads_who_sees_the_explanation(studies):
    store, ids = studies
    reg = _by_model(store, ids["noisy"])[NOISY_SENSITIVE]
    assert reg["fitted"] and reg["note"] is None and reg["parsed"] == reg["n"] == 60
    assert reg["formula"] == 'override ~ C(info, Treatment("neither"))'
    terms = _info_terms(reg)
    for reads in ("info=both", "info=principal-only"):  # the principal reads: overrides
        assert terms[reads]["ci_low"] > 0 and terms[reads]["coef"] > 1
    low, high = terms["info=customer-only"]["ci_low"], terms["info=customer-only"]["ci_high"]
    assert low < 0 < high
    assert reg["effect"]["df"] == 3 and reg["effect"]["p"] < 0.01
    assert reg["association"]["p"] < 0.01


def test_regression_finds_no_effect_when_the_policy_ignores_who_reads(studies):
    store, ids = studies
    reg = _by_model(store, ids["noisy"])[NOISY_RIGID]
    assert reg["fitted"]
    assert all(t["ci_low"] < 0 < t["ci_high"] for t in _info_terms(reg).values())
    assert reg["effect"]["p"] > 0.05


def test_label_order_and_case_controls_enter_when_they_vary(store):
    sid = _study(store, [NOISY_SENSITIVE], reps=2, controls=True)
    (reg,) = regressions(store, sid)
    assert reg["formula"] == ('override ~ C(info, Treatment("neither")) + labels_reversed'
                              ' + C(case, Treatment("standard"))')
    names = {t["term"] for t in reg["terms"]}
    assert {"labels reversed", "case=upper (vs standard)", "case=lower (vs standard)"} <= names


def test_perfect_separation_is_fitted_by_firth_and_no_variation_gives_one_line(studies):
    store, ids = studies
    regs = _by_model(store, ids["exact"])
    sensitive, rigid = regs["scripted:info-sensitive"], regs["scripted:rigid"]
    # every cell is all-or-nothing: the plain MLE is infinite, Firth's estimates are finite
    assert sensitive["fitted"] and sensitive["method"] == "firth"
    assert sensitive["note"].startswith("separation: every parsed answer is the same in info=")
    terms = _info_terms(sensitive)
    for reads in ("info=both", "info=principal-only"):  # overrides only where the principal reads
        assert np.isfinite(terms[reads]["coef"]) and terms[reads]["ci_low"] > 0
    assert abs(terms["info=customer-only"]["coef"]) < 1e-6
    assert sensitive["effect"]["test"].startswith("penalized LR")
    assert sensitive["effect"]["df"] == 3 and sensitive["effect"]["p"] < 0.01
    assert sensitive["association"]["p"] < 0.01
    assert not rigid["fitted"] and rigid["note"] == ("not fitted: no variation, every parsed "
                                                     "answer overrides (20 of 20)")


def test_firth_equals_the_haldane_corrected_log_odds_on_a_separated_two_by_two_table():
    # saturated binary covariate: Firth's estimate is the log odds ratio with 1/2 added to
    # every cell (Firth 1993), finite although one cell is empty
    x = np.repeat([0.0, 1.0], 10)
    y = np.concatenate([np.ones(4), np.zeros(6), np.ones(10)])
    X = np.column_stack([np.ones_like(x), x])
    fit = firth_logit(y, X)
    a, b, c, d = 4, 6, 10, 0
    assert fit.params[0] == pytest.approx(np.log((a + .5) / (b + .5)), abs=1e-8)
    assert fit.params[1] == pytest.approx(np.log((c + .5) * (b + .5) / ((d + .5) * (a + .5))),
                                          abs=1e-8)
    null = firth_logit(y, X, zero=[1])
    assert null.params[1] == 0 and 2 * (fit.loglik - null.loglik) > 3.84  # p < 0.05


def test_firth_shrinks_the_mle_toward_zero_without_separation():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = sm.add_constant(rng.normal(size=(60, 2)))
    y = (rng.random(60) < 1 / (1 + np.exp(-(X @ [0.2, 1.0, -0.8])))).astype(float)
    mle = sm.Logit(y, X).fit(disp=0).params
    firth = firth_logit(y, X).params
    assert np.all(np.abs(firth[1:]) < np.abs(mle[1:]))
    assert np.allclose(firth, mle, atol=0.25)


def test_too_few_parsed_answers_are_reported_not_fitted(studies):
    store, ids = studies
    (reg,) = regressions(store, ids["echo"])
    assert not reg["fitted"]
    assert reg["note"] == "not fitted: too few parsed answers (0 of 8; needs 10)"


def test_paper_anchors_agree_with_the_gpt35_reference_and_the_published_gpt4_row():
    assert len(PAPER_ANCHORS) == 2 * 2 * 2 * 4  # model x temperature x scenario x condition
    for (scenario, cond), value in PAPER_GPT35.items():
        overrides, parsed, _ = PAPER_ANCHORS[("gpt-3.5-turbo", 0.2, scenario, cond)]
        assert round(overrides / parsed, 2) == value
    assert PAPER_ANCHORS[("gpt-4", 0.6, "car", "neither")] == (23, 30, 30)
    assert all(o <= p <= n == 30 for o, p, n in PAPER_ANCHORS.values())


def test_a_noisy_policy_session_replays_exactly(studies):
    from tinmen.graphs.replay import replay_session

    store, ids = studies
    frame = override_frame(store, ids["noisy"])
    report = replay_session(store, frame["session_id"].iloc[0])
    assert report.identical, report.differences or report.divergence
