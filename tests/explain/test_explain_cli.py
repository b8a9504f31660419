import json
from pathlib import Path

import pytest
import torch

from dmrx.explain import mass_share
from dmrx.explain.plot import _outline_segments, plot_maps
from dmrx.explain.run import ExplainResult
from dmrx.ofdm import dmrs_mask
from dmrx.scenarios.cli import main

CHECKPOINT = Path(__file__).parents[2] / "checkpoints" / "neural-ref-4prb"


def test_outline_of_a_band_is_its_perimeter_and_of_one_re_four_edges():
    one = torch.zeros(14, 48, dtype=torch.bool)
    one[3, 5] = True
    assert sorted(_outline_segments(one)) == sorted([
        ((2.5, 4.5), (2.5, 5.5)), ((3.5, 4.5), (3.5, 5.5)),
        ((2.5, 4.5), (3.5, 4.5)), ((2.5, 5.5), (3.5, 5.5))])
    band = torch.zeros(14, 48, dtype=torch.bool)
    band[:, 12:24] = True
    assert len(_outline_segments(band)) == 2 * 12 + 2 * 14


def test_plot_maps_writes_a_figure_and_refuses_wrong_shapes(ref_link, tmp_path):
    path = tmp_path / "m.png"
    plot_maps({"a": torch.rand(14, 48), "b": torch.rand(14, 48)}, ref_link, path,
              jammed=torch.zeros(14, 48, dtype=torch.bool).index_fill_(1, torch.arange(4), True))
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="map must have shape"):
        plot_maps({"a": torch.rand(48, 14)}, ref_link, tmp_path / "x.png")


def test_explain_cli_writes_figure_and_json(tmp_path, capsys):
    fig, out = tmp_path / "fig.png", tmp_path / "out.json"
    rc = main(["explain", "--checkpoint", str(CHECKPOINT), "--slots", "2", "--method",
               "grad-cam,score-cam", "--target", "error", "--jammer", "partial-band",
               "--jam-subcarriers", "0:12", "--faithfulness-steps", "4", "--out", str(fig),
               "--json", str(out), "--no-progress"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["slots"] == 2 and d["target"] == "error" and d["layer"] == "net.output_conv:in"
    assert set(d["methods"]) == {"grad-cam", "score-cam"}
    assert d["area_share"]["jammed"] == pytest.approx(12 / 48)
    # what a rerun needs: the seed (default 0), checkpoint, scenario and jammer
    assert d["setup"]["seed"] == 0 and d["setup"]["checkpoint"] == str(CHECKPOINT)
    assert d["setup"]["scenario"] == "tdl-c-300ns-60kmh"
    assert d["setup"]["jammer"]["subcarriers"] == "0:12"
    m = d["methods"]["score-cam"]
    assert len(m["mean_map"]) == 14 and len(m["mean_map"][0]) == 48
    assert len(m["faithfulness"]["deletion"]) == 5
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert "score-cam" in capsys.readouterr().out


def test_explain_cli_reports_bad_input(capsys):
    assert main(["explain", "--checkpoint", str(CHECKPOINT), "--method", "lime"]) == 2
    assert "grad-cam" in capsys.readouterr().err
    assert main(["explain", "--checkpoint", str(CHECKPOINT), "--target", "re",
                 "--symbol", "3"]) == 2
    assert "subcarrier" in capsys.readouterr().err


def test_explain_table_counts_maps_that_are_zero_everywhere(ref_link):
    maps = torch.rand(3, 14, 48)
    maps[1] = 0.0
    res = ExplainResult(ref_link, "error", "conv", 11.0, {"score-cam": maps})
    assert res.zero_maps("score-cam") == 1 and res.as_dict()["methods"]["score-cam"][
        "zero_maps"] == 1
    rows = res.table().splitlines()
    assert rows[1].split()[-1] == "1/3" and "not zero everywhere" in rows[-1]
    # the DMRS share is the mean over the two non-zero maps, not over all three
    expect = mass_share(maps[[0, 2]], dmrs_mask(ref_link)).mean()
    assert res.shares("score-cam")["dmrs"] == pytest.approx(float(expect))
