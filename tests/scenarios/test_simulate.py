import pytest

from dmrx.scenarios import build_receiver, get_scenario, parse_snr_db, simulate


def test_parse_snr_db():
    assert parse_snr_db("6:14:2") == [6, 8, 10, 12, 14]
    assert parse_snr_db("0:1:0.25") == [0, 0.25, 0.5, 0.75, 1.0]
    assert parse_snr_db("-3.5") == [-3.5]


@pytest.mark.parametrize("text, msg", [
    ("14:6:2", "backwards"), ("6:14:0", "step must be > 0"), ("6:14", "start:stop:step"),
    ("a:b:c", "start:stop:step"), ("100", "out of range"),
])
def test_bad_snr_range_is_explained(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_snr_db(text)


def test_same_seed_same_numbers_and_ls_never_beats_perfect_csi(ref_link):
    sc = get_scenario("tdl-c-300ns-60kmh")
    rx = {n: build_receiver(n, ref_link) for n in ("ls", "perfect")}
    a = simulate(ref_link, sc, rx, [8.0, 10.0], 96, batch_size=48, seed=7, progress=False)
    b = simulate(ref_link, sc, rx, [10.0], 96, batch_size=48, seed=7, progress=False)
    # a point's slots depend on (seed, SNR, batch size) only, not on the other points
    assert a.points[2:] == b.points
    ls, perfect = (sum((p.counts for p in a.points if p.receiver == n),
                       start=type(a.points[0].counts)()) for n in ("ls", "perfect"))
    assert ls.coded_bit_errors > perfect.coded_bit_errors
    assert ls.blocks == perfect.blocks == 192


def test_each_receiver_stops_after_enough_block_errors(ref_link):
    sc = get_scenario("tdl-c-300ns-60kmh")
    rx = {n: build_receiver(n, ref_link) for n in ("ls", "perfect")}
    r = simulate(ref_link, sc, rx, [9.0], 320, batch_size=32, max_block_errors=40,
                 progress=False)
    ls, perfect = r.points
    # LS (BLER ~0.5 here) reaches 40 errors within a few batches; perfect CSI needs more slots
    assert ls.counts.block_errors >= 40 and ls.counts.blocks < perfect.counts.blocks
    assert ls.counts.blocks - 32 < 40 / 0.2


@pytest.mark.parametrize("kw, msg", [({"num_slots": -5}, "num_slots"), ({"num_slots": 0},
                                      "num_slots"), ({"snr_db": [70.0]}, "out of range")])
def test_simulate_rejects_bad_input(ref_link, kw, msg):
    args = dict(num_slots=10, snr_db=[10.0]) | kw
    with pytest.raises(ValueError, match=msg):
        simulate(ref_link, get_scenario("awgn"), {"ls": build_receiver("ls", ref_link)},
                 args["snr_db"], args["num_slots"], progress=False)
