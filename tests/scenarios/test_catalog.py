import pytest

from dmrx.scenarios import LINKS, SCENARIOS, get_link, get_scenario


def test_catalog_has_the_reference_scenarios():
    for name in ("tdl-c-300ns-3kmh", "tdl-c-300ns-60kmh", "tdl-c-300ns-300kmh"):
        sc = get_scenario(name)
        assert (sc.channel.model, sc.channel.profile, sc.channel.delay_spread_ns) == \
            ("tdl", "C", 300.0)
    assert get_scenario("tdl-c-300ns-300kmh").channel.speed_kmh == 300.0
    assert {"ref-4prb", "ref-4prb-hs"} <= set(LINKS)


def test_any_tdl_or_cdl_point_can_be_named():
    sc = get_scenario("cdl-b-45ns-12.5kmh")
    assert (sc.channel.model, sc.channel.profile, sc.channel.delay_spread_ns,
            sc.channel.speed_kmh) == ("cdl", "B", 45.0, 12.5)


@pytest.mark.parametrize("name", ["tdl-f-300ns-3kmh", "umi", "tdl-c-300-3", ""])
def test_unknown_scenario_lists_what_is_allowed(name):
    with pytest.raises(ValueError, match="unknown scenario .* use one of .*tdl-c-300ns-60kmh"):
        get_scenario(name)


def test_unknown_link():
    with pytest.raises(ValueError, match="unknown link 'ref-5prb'.*ref-4prb"):
        get_link("ref-5prb")


def test_every_catalog_scenario_builds_a_channel(ref_link):
    from dmrx.ofdm import Channel, Transmitter

    x = Transmitter(ref_link)(2).x
    for sc in SCENARIOS.values():
        y, h = Channel(ref_link, sc.channel)(x, 0.1)
        assert y.shape == (2, 1, 1, 14, 48) and h.shape == (2, 1, 1, 1, 1, 14, 48)
