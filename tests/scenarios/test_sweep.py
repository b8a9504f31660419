import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dmrx.ofdm import ErrorCounts
from dmrx.scenarios import build_receiver, get_link, get_scenario, simulate
from dmrx.scenarios.cli import main
from dmrx.scenarios.metrics import split_zero_points
from dmrx.scenarios.report import write_report
from dmrx.scenarios.results import TIMING_COLUMNS, ResultsStore, read_results
from dmrx.scenarios.runners import run_point, run_sweep
from dmrx.scenarios.sweep import load_spec, spec_from_dict

# Nine cheap points (AWGN, LS, 32 slots): enough that a killed sweep is caught mid-run.
GRID = {"name": "tiny", "link": "ref-4prb", "scenarios": ["awgn"], "snr_db": [3.0, 5.0, 7.0],
        "seeds": [0, 1, 2], "slots": 32, "batch_size": 16, "max_block_errors": 24,
        "receivers": ["ls", "perfect"]}


def _toml(d: dict) -> str:
    def val(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    return "\n".join(f"{k} = {val(v)}" for k, v in d.items()) + "\n"


def _rows(table):
    """The table without the timing columns, which differ between two runs of a point."""
    return table.drop_columns(list(TIMING_COLUMNS)).to_pylist()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-worker run of GRID: (spec path, results table)."""
    d = tmp_path_factory.mktemp("ref")
    (d / "spec.toml").write_text(_toml(GRID))
    spec = load_spec(d / "spec.toml")
    run = run_sweep(spec, d / "out", workers=2, progress=False)
    assert (run.ran, run.skipped, run.total) == (9, 0, 9)
    return d / "spec.toml", read_results(d / "out")


@pytest.mark.parametrize("change, msg", [
    ({"receivers": ["ls", "magic"]}, r"receiver 2: .*'magic' is not a known receiver"),
    ({"snr_db": []}, r"SweepSpec.snr_db=\(\) is not allowed: at least one SNR point"),
    ({"snr_db": "8:4:1"}, r"snr_db: .*backwards"),
    ({"receivers": ["neural=does/not/exist"]}, r"checkpoint '.*does/not/exist' is unreadable"),
    ({"receivers": ["neural"]}, r"ReceiverSpec.checkpoint: receiver 'neural' needs one"),
    ({"scenarios": ["tdl-z-1ns-1kmh"]}, r"SweepSpec.scenarios: unknown scenario 'tdl-z"),
    ({"slots": 0}, r"SweepSpec.slots=0 is not allowed"),
    ({"seeds": [1, 1]}, r"SweepSpec.seeds=\(1, 1\) is not allowed: distinct"),
    ({"link": "ref-9prb"}, r"unknown link 'ref-9prb'"),
    ({"snr": [1.0]}, r"unknown keys \['snr'\]"),
    ({"receivers": [{"name": "ls", "ckpt": "x"}]}, r"receiver 1: unknown \['ckpt'\]"),
])
def test_spec_errors_name_the_field(tmp_path, change, msg):
    with pytest.raises(ValueError, match=msg):
        spec_from_dict(GRID | change, tmp_path)


def test_unreadable_checkpoint_file_is_reported(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text("{}")  # no weights file
    with pytest.raises(ValueError, match="checkpoint .* is unreadable"):
        spec_from_dict(GRID | {"receivers": [{"name": "neural", "checkpoint": "ck"}]}, tmp_path)


def test_spec_hash_depends_on_the_grid_not_the_name(tmp_path):
    a = spec_from_dict(GRID, tmp_path)
    assert spec_from_dict(GRID | {"name": "other"}, tmp_path).spec_hash == a.spec_hash
    assert spec_from_dict(GRID | {"slots": 33}, tmp_path).spec_hash != a.spec_hash
    points = a.points()
    assert len(points) == 9 and len({p.point_id for p in points}) == 9
    # a point keeps its id in a larger grid, so its stored result is reused there
    bigger = spec_from_dict(GRID | {"snr_db": [3.0, 5.0, 7.0, 9.0]}, tmp_path)
    assert {p.point_id for p in points} < {p.point_id for p in bigger.points()}


def test_a_point_is_simulate_with_its_seed_and_stops_after_enough_errors(tmp_path):
    spec = spec_from_dict(GRID | {"snr_db": [3.0], "seeds": [5], "slots": 96}, tmp_path)
    (point,) = spec.points()
    rows = {r["receiver"]: r for r in run_point(point)}
    link = get_link("ref-4prb")
    rx = {n: build_receiver(n, link) for n in ("ls", "perfect")}
    direct = simulate(link, get_scenario("awgn"), rx, [3.0], 96, batch_size=16, seed=5,
                      max_block_errors=24, progress=False)
    for p in direct.points:
        r = rows[p.receiver]
        assert ErrorCounts(r["bit_errors"], r["bits"], r["block_errors"], r["slots"],
                           r["coded_bit_errors"], r["coded_bits"]) == p.counts
        # 3 dB on AWGN fails nearly every block: the 24-error limit ends the point early
        assert 24 <= r["block_errors"] and r["slots"] < 96 and r["max_slots"] == 96


def test_results_do_not_depend_on_the_worker_count(tmp_path, reference):
    spec_path, table = reference
    run = run_sweep(load_spec(spec_path), tmp_path / "one", workers=1, progress=False)
    assert run.ran == 9
    assert _rows(read_results(tmp_path / "one")) == _rows(table)
    assert table.num_rows == 18  # 9 points x 2 receivers


def test_ray_backend_gives_the_local_table_and_resumes(tmp_path, reference):
    """The same points on a local Ray cluster: the same rows as the local pool, and a rerun
    (here by the local pool) finds every point done."""
    pytest.importorskip("ray")
    spec_path, table = reference
    spec = load_spec(spec_path)
    run = run_sweep(spec, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert (run.backend, run.ran, run.skipped) == ("ray", 9, 0)
    assert _rows(read_results(tmp_path / "ray")) == _rows(table)
    again = run_sweep(spec, tmp_path / "ray", workers=1, progress=False)
    assert (again.ran, again.skipped) == (0, 9)


def test_ray_backend_without_ray_says_how_to_get_it(tmp_path, reference, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ValueError, match=r"--backend ray needs Ray: pip install 'dmrx\[ray\]'"):
        run_sweep(load_spec(reference[0]), tmp_path / "x", backend="ray", progress=False)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_sigkilled_sweep_resumes_to_the_uninterrupted_table(tmp_path, reference):
    spec_path, table = reference
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        from dmrx.scenarios.runners import run_sweep
        from dmrx.scenarios.sweep import load_spec
        if __name__ == "__main__":
            run_sweep(load_spec({str(spec_path)!r}), {str(out)!r}, workers=1, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(ResultsStore(out).finished_ids())  # hidden temp files are not points
        if done >= 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool, as a crash would
    proc.wait()
    assert 2 <= done < 9, f"the sweep was not caught mid-run ({done} points done)"
    partial = read_results(out)
    assert 2 <= partial.num_rows // 2 < 9
    run = run_sweep(load_spec(spec_path), out, workers=2, progress=False)
    assert run.skipped == partial.num_rows // 2 and run.skipped + run.ran == 9
    again = read_results(out)
    assert _rows(again) == _rows(table)
    ids = again.column("point_id").to_pylist()
    assert len(set(ids)) == 9 and len(ids) == 18  # no point missing, none twice


def test_cli_sweep_resumes_and_report_reads_snr_at_bler(tmp_path, reference, capsys):
    spec_path, table = reference
    out = tmp_path / "cli"
    assert main(["sweep", str(spec_path), "--out", str(out), "--workers", "1",
                 "--no-progress"]) == 0
    assert "9 points run, 0 already done" in capsys.readouterr().out
    assert main(["sweep", str(spec_path), "--out", str(out), "--no-progress"]) == 0
    assert "0 points run, 9 already done" in capsys.readouterr().out
    assert main(["report", str(out), "--target-bler", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "awgn" in text and "ls" in text and "perfect" in text
    assert (out / "report" / "waterfall-ref-4prb-awgn.png").stat().st_size > 0
    rep = write_report(out, target_bler=0.5)
    ls, perfect = rep.curves
    assert (ls.receiver, perfect.receiver) == ("ls", "perfect")
    # LS pays for its channel estimate: never a lower BLER than perfect CSI on the same slots
    assert all(a >= b for a, b in zip(ls.bler, perfect.bler, strict=True))
    assert 3.0 < perfect.snr_at(0.5) <= 7.0
    assert perfect.seeds == 3 and perfect.slots[-1] == 96  # seeds merged by adding counts


def test_cli_sweep_rejects_a_bad_spec(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(_toml(GRID | {"snr_db": []}))
    assert main(["sweep", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "snr_db" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_error_free_points_are_kept_off_the_waterfall_line():
    """A point with no error bounds the rate by ~1 / count, it is not a measurement: it is
    returned apart at 0.5 / count, and the line joins only points with errors."""
    mx, my, bx, by = split_zero_points([4, 6, 8, 10], [0.3, 0.01, 0.0, 0.0], [100, 1000, 2000,
                                                                             4000])
    assert (mx, my) == ([4, 6], [0.3, 0.01])
    assert (bx, by) == ([8, 10], [0.5 / 2000, 0.5 / 4000])


def test_example_sweep_spec_is_valid():
    spec = load_spec(Path(__file__).parents[2] / "examples" / "ref-waterfalls.toml")
    assert spec.link == "ref-4prb" and len(spec.scenarios) == 2 and len(spec.receivers) == 3
    assert spec.receivers[2].digest  # the shipped checkpoint, found relative to the spec
