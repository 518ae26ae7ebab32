"""Exactly once under concurrency: processes resuming one study split its grid."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import func, select
from tinmen.graphs.grid import Grid, plan_from_grid
from tinmen.graphs.registry import load_agent
from tinmen.graphs.study import create_or_resume, run_study
from tinmen.models.pool import ModelPool
from tinmen.storage import Store, claims, orm

GRID = 'reps = 30\n[inputs]\nrequest = "egg"\n[axes]\nmax_new_tokens = [4, 8]\n'


def test_four_concurrent_resumes_run_each_grid_point_exactly_once(tmp_path):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID)
    url = f"sqlite:///{tmp_path}/study.db"
    store = Store.open(url)
    plan = plan_from_grid(load_agent("example"), "example", Grid.from_file(grid_file),
                          ["agent=scripted:echo"])
    sid, _, _ = create_or_resume(store, plan, None)
    cmd = [sys.executable, "-m", "tinmen.cli", "study", "run", "example", "--grid",
           str(grid_file), "-m", "agent=scripted:echo", "--resume", str(sid), "--db", url,
           "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    ran = [json.loads(o)["ran"] for o, _ in outs]
    with store.unit_of_work() as uow:
        S = orm.Session
        per_point = uow.session.execute(
            select(S.condition_id, S.rep, func.count()).where(S.study_id == sid)
            .group_by(S.condition_id, S.rep)).all()
        status = uow.studies.get(sid).status
    assert sum(ran) == 60 and len(per_point) == 60, ran
    assert {n for *_, n in per_point} == {1}
    assert status == "completed"


def test_a_dead_processs_claim_is_taken_over_and_a_failed_trial_released(store):
    plan = plan_from_grid(load_agent("example"), "example",
                          Grid.model_validate({"inputs": {"request": "egg"}}),
                          ["agent=scripted:echo"])
    sid, ids, _ = create_or_resume(store, plan, None)
    cond = ids["all"]
    with store.unit_of_work() as uow:  # a claim left by a process that no longer exists
        uow.session.add(orm.TrialClaim(study_id=sid, condition_id=cond, rep=0, pid=2**22 + 7))
        uow.commit()
    assert claims.claim(store, sid, cond, 0)  # taken over
    claims.release(store, sid, cond, 0)
    outcome = run_study(store, plan, pool=ModelPool(), study_id=sid, progress=False)
    assert outcome.ran == 1 and outcome.claimed_elsewhere == 0
    assert not claims.claim(store, sid, cond, 0)  # done: never run again
