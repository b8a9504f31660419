import pytest

from dmrx.scenarios.schedules import SCHEDULES, Segment, get_schedule, load_schedule


def test_drift_default_goes_a_c_e_and_back():
    s = get_schedule("drift-default")
    assert [x.scenario for x in s.segments] == ["tdl-a-30ns-3kmh", "tdl-c-300ns-60kmh",
                                                "tdl-e-100ns-120kmh", "tdl-a-30ns-3kmh"]
    assert s.boundaries == [300, 600, 900] and s.num_slots == 1200
    assert [s.segment_of(i) for i in (0, 299, 300, 1199)] == [0, 0, 1, 3]
    assert "drift-default" in SCHEDULES


def test_schedule_from_toml(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\n[[segment]]\nscenario = "tdl-b-100ns-30kmh"\nslots = 10\n'
                 'snr_db = 8.5\n[[segment]]\nscenario = "awgn"\nslots = 5\nsnr_db = 3\n')
    s = get_schedule(str(p))
    assert s.name == "mine" and s.num_slots == 15
    assert s.segments[0] == Segment("tdl-b-100ns-30kmh", 10, 8.5)


@pytest.mark.parametrize("body, msg", [
    ('[[segment]]\nscenario = "tdl-z-1ns-1kmh"\nslots = 1\nsnr_db = 1\n',
     "segment 1: unknown scenario 'tdl-z-1ns-1kmh'"),
    ('[[segment]]\nscenario = "awgn"\nslots = 0\nsnr_db = 1\n', "segment 1: Segment.slots=0"),
    ('[[segment]]\nscenario = "awgn"\nslots = 3\nsnr_db = 99\n', "Segment.snr_db=99"),
    ('[[segment]]\nscenario = "awgn"\nslots = 3\n', "segment 1: missing ['snr_db']"),
    ('[[segment]]\nscenario = "awgn"\nslots = 3\nsnr_db = 1\nspeed = 3\n', "unknown ['speed']"),
    ('name = "x"\n', "no [[segment]]"),
    ('[[segment]\n', "not valid TOML"),
])
def test_bad_schedule_files_are_explained(tmp_path, body, msg):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        load_schedule(p)


def test_unknown_schedule_name():
    with pytest.raises(ValueError, match="unknown schedule 'drift-x'.*drift-default"):
        get_schedule("drift-x")
