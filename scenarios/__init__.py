"""dmrx.scenarios — named links and channels, simulation sweeps, and the `dmrx` CLI."""

from dmrx.scenarios.catalog import (
    LINKS,
    SCENARIOS,
    Scenario,
    get_link,
    get_scenario,
    make_channel,
)
from dmrx.scenarios.receivers import RECEIVER_NAMES, build_receiver
from dmrx.scenarios.simulate import SimulationResult, SnrPoint, parse_snr_db, simulate

__all__ = ["LINKS", "SCENARIOS", "Scenario", "get_link", "get_scenario", "make_channel",
           "RECEIVER_NAMES", "build_receiver", "SimulationResult", "SnrPoint", "parse_snr_db",
           "simulate"]
