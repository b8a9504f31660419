"""dmrx.robust — jammers and (later) adversarial perturbations and robust training."""

from dmrx.robust.jammers import DMRSJammer, PartialBandJammer

__all__ = ["DMRSJammer", "PartialBandJammer"]
