"""Sequential models: each example's history of items -> scores of the next item (RecBole's
``sequential_recommender``)."""

from recforge.models.sequential.bert4rec import BERT4Rec
from recforge.models.sequential.caser import Caser
from recforge.models.sequential.core import CORE
from recforge.models.sequential.fearec import FEARec
from recforge.models.sequential.fossil import FOSSIL
from recforge.models.sequential.fpmc import FPMC
from recforge.models.sequential.gcsan import GCSAN
from recforge.models.sequential.gru4rec import GRU4Rec
from recforge.models.sequential.hgn import HGN
from recforge.models.sequential.hrm import HRM
from recforge.models.sequential.lightsans import LightSANs
from recforge.models.sequential.narm import NARM
from recforge.models.sequential.nextitnet import NextItNet
from recforge.models.sequential.npe import NPE
from recforge.models.sequential.repeatnet import RepeatNet
from recforge.models.sequential.sasrec import SASRec
from recforge.models.sequential.shan import SHAN
from recforge.models.sequential.sine import SINE
from recforge.models.sequential.srgnn import SRGNN
from recforge.models.sequential.stamp import STAMP
from recforge.models.sequential.transrec import TransRec

__all__ = [
    "CORE",
    "FOSSIL",
    "FPMC",
    "GCSAN",
    "HGN",
    "HRM",
    "NARM",
    "NPE",
    "SHAN",
    "SINE",
    "SRGNN",
    "STAMP",
    "BERT4Rec",
    "Caser",
    "FEARec",
    "GRU4Rec",
    "LightSANs",
    "NextItNet",
    "RepeatNet",
    "SASRec",
    "TransRec",
]
