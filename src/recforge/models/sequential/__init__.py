"""Sequential models: each example's history of items -> scores of the next item (RecBole's
``sequential_recommender``)."""

from recforge.models.sequential.bert4rec import BERT4Rec
from recforge.models.sequential.caser import Caser
from recforge.models.sequential.core import CORE
from recforge.models.sequential.dien import DIEN
from recforge.models.sequential.din import DIN
from recforge.models.sequential.fdsa import FDSA
from recforge.models.sequential.fearec import FEARec
from recforge.models.sequential.fossil import FOSSIL
from recforge.models.sequential.fpmc import FPMC
from recforge.models.sequential.gcsan import GCSAN
from recforge.models.sequential.gru4rec import GRU4Rec
from recforge.models.sequential.gru4reccpr import GRU4RecCPR
from recforge.models.sequential.gru4recf import GRU4RecF
from recforge.models.sequential.hgn import HGN
from recforge.models.sequential.hrm import HRM
from recforge.models.sequential.lightsans import LightSANs
from recforge.models.sequential.narm import NARM
from recforge.models.sequential.nextitnet import NextItNet
from recforge.models.sequential.npe import NPE
from recforge.models.sequential.repeatnet import RepeatNet
from recforge.models.sequential.s3rec import S3Rec
from recforge.models.sequential.sasrec import SASRec
from recforge.models.sequential.sasreccpr import SASRecCPR
from recforge.models.sequential.sasrecf import SASRecF
from recforge.models.sequential.shan import SHAN
from recforge.models.sequential.sine import SINE
from recforge.models.sequential.srgnn import SRGNN
from recforge.models.sequential.stamp import STAMP
from recforge.models.sequential.transrec import TransRec

__all__ = [
    "CORE",
    "DIEN",
    "DIN",
    "FDSA",
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
    "GRU4RecCPR",
    "GRU4RecF",
    "LightSANs",
    "NextItNet",
    "RepeatNet",
    "S3Rec",
    "SASRec",
    "SASRecCPR",
    "SASRecF",
    "TransRec",
]
