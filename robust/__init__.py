"""dmrx.robust — jammers, adversarial perturbations of the received grid (FGSM, PGD,
universal) and robust training (PGD-AT, S2O, explanation-guided AT, jammer augmentation)."""

from dmrx.robust.attacks import (
    ATTACKS,
    UniversalPerturbation,
    fgsm,
    parse_psr_db,
    perturb,
    pgd,
    train_universal,
)
from dmrx.robust.jammers import (
    JAMMER_KINDS,
    BarrageJammer,
    DMRSJammer,
    JammedChannel,
    Jammer,
    JammerSpec,
    MultiToneJammer,
    PartialBandJammer,
    PulsedJammer,
    ReactiveJammer,
    ToneJammer,
    channel_stage,
    make_jammer,
    split_jammer,
)
from dmrx.robust.training import METHODS, RobustConfig, RobustLoss, s2o_term

__all__ = ["ATTACKS", "UniversalPerturbation", "fgsm", "parse_psr_db", "perturb", "pgd",
           "train_universal", "JAMMER_KINDS", "BarrageJammer", "DMRSJammer",
           "JammedChannel", "Jammer", "JammerSpec", "MultiToneJammer", "PartialBandJammer",
           "PulsedJammer", "ReactiveJammer", "ToneJammer", "channel_stage", "make_jammer",
           "split_jammer", "METHODS", "RobustConfig",
           "RobustLoss", "s2o_term"]
