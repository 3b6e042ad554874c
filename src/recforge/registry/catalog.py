"""The built-in models and trainers, by name: where each lives (``"module:Class"``).

This catalog is how they are registered: a model or trainer is imported the first time it is looked up, so
importing recforge (or running ``recforge --help``) imports none of them, nor torch. What the models declare
(type, trainer, hyper-parameters) is listed without importing them in ``recforge.config.declarations``, generated
from the classes (``scripts/generate_declarations.py``; a test keeps it current). A new built-in model gets a line
here and a regenerated declarations file.
"""

from __future__ import annotations

MODELS = {
    "AFM": "recforge.models.context.interaction:AFM",
    "AutoInt": "recforge.models.context.attention:AutoInt",
    "BERT4Rec": "recforge.models.sequential.bert4rec:BERT4Rec",
    "BPR": "recforge.models.general.bpr:BPR",
    "CFKG": "recforge.models.knowledge.cfkg:CFKG",
    "CKE": "recforge.models.knowledge.cke:CKE",
    "CORE": "recforge.models.sequential.core:CORE",
    "Caser": "recforge.models.sequential.caser:Caser",
    "DCN": "recforge.models.context.cross:DCN",
    "DCNV2": "recforge.models.context.cross:DCNV2",
    "DIEN": "recforge.models.sequential.dien:DIEN",
    "DIN": "recforge.models.sequential.din:DIN",
    "DSSM": "recforge.models.context.dssm:DSSM",
    "DeepFM": "recforge.models.context.factorization:DeepFM",
    "EulerNet": "recforge.models.context.eulernet:EulerNet",
    "FDSA": "recforge.models.sequential.fdsa:FDSA",
    "FEARec": "recforge.models.sequential.fearec:FEARec",
    "FFM": "recforge.models.context.interaction:FFM",
    "FM": "recforge.models.context.factorization:FM",
    "FNN": "recforge.models.context.deep:FNN",
    "FOSSIL": "recforge.models.sequential.fossil:FOSSIL",
    "FPMC": "recforge.models.sequential.fpmc:FPMC",
    "FiGNN": "recforge.models.context.attention:FiGNN",
    "FwFM": "recforge.models.context.interaction:FwFM",
    "GCSAN": "recforge.models.sequential.gcsan:GCSAN",
    "GRU4Rec": "recforge.models.sequential.gru4rec:GRU4Rec",
    "GRU4RecCPR": "recforge.models.sequential.gru4reccpr:GRU4RecCPR",
    "GRU4RecF": "recforge.models.sequential.gru4recf:GRU4RecF",
    "GRU4RecKG": "recforge.models.sequential.gru4reckg:GRU4RecKG",
    "HGN": "recforge.models.sequential.hgn:HGN",
    "HRM": "recforge.models.sequential.hrm:HRM",
    "ItemKNN": "recforge.models.general.itemknn:ItemKNN",
    "KD_DAGFM": "recforge.models.context.kd_dagfm:KD_DAGFM",
    "KGAT": "recforge.models.knowledge.kgat:KGAT",
    "KGCN": "recforge.models.knowledge.kgcn:KGCN",
    "KGIN": "recforge.models.knowledge.kgin:KGIN",
    "KGNNLS": "recforge.models.knowledge.kgnnls:KGNNLS",
    "KSR": "recforge.models.sequential.ksr:KSR",
    "KTUP": "recforge.models.knowledge.ktup:KTUP",
    "LR": "recforge.models.context.factorization:LR",
    "LightGBM": "recforge.models.tree.lightgbm:LightGBM",
    "LightGCN": "recforge.models.general.lightgcn:LightGCN",
    "LightSANs": "recforge.models.sequential.lightsans:LightSANs",
    "MCCLK": "recforge.models.knowledge.mcclk:MCCLK",
    "MKR": "recforge.models.knowledge.mkr:MKR",
    "NARM": "recforge.models.sequential.narm:NARM",
    "NCL": "recforge.models.general.ncl:NCL",
    "NFM": "recforge.models.context.factorization:NFM",
    "NGCF": "recforge.models.general.ngcf:NGCF",
    "NPE": "recforge.models.sequential.npe:NPE",
    "NextItNet": "recforge.models.sequential.nextitnet:NextItNet",
    "PNN": "recforge.models.context.interaction:PNN",
    "Pop": "recforge.models.general.pop:Pop",
    "RepeatNet": "recforge.models.sequential.repeatnet:RepeatNet",
    "RippleNet": "recforge.models.knowledge.ripplenet:RippleNet",
    "S3Rec": "recforge.models.sequential.s3rec:S3Rec",
    "SASRec": "recforge.models.sequential.sasrec:SASRec",
    "SASRecCPR": "recforge.models.sequential.sasreccpr:SASRecCPR",
    "SASRecF": "recforge.models.sequential.sasrecf:SASRecF",
    "SGL": "recforge.models.general.sgl:SGL",
    "SHAN": "recforge.models.sequential.shan:SHAN",
    "SINE": "recforge.models.sequential.sine:SINE",
    "SRGNN": "recforge.models.sequential.srgnn:SRGNN",
    "STAMP": "recforge.models.sequential.stamp:STAMP",
    "SimGCL": "recforge.models.general.simgcl:SimGCL",
    "TransRec": "recforge.models.sequential.transrec:TransRec",
    "WideDeep": "recforge.models.context.deep:WideDeep",
    "XGBoost": "recforge.models.tree.xgboost:XGBoost",
    "xDeepFM": "recforge.models.context.xdeepfm:xDeepFM",
}

TRAINERS = {
    "DecisionTreeTrainer": "recforge.trainer.tree:DecisionTreeTrainer",
    "KGATTrainer": "recforge.trainer.knowledge:KGATTrainer",
    "KGTrainer": "recforge.trainer.knowledge:KGTrainer",
    "LightGBMTrainer": "recforge.trainer.tree:LightGBMTrainer",
    "MKRTrainer": "recforge.trainer.knowledge:MKRTrainer",
    "NCLTrainer": "recforge.trainer.ncl:NCLTrainer",
    "PretrainTrainer": "recforge.trainer.pretrain:PretrainTrainer",
    "S3RecTrainer": "recforge.trainer.pretrain:S3RecTrainer",
    "Trainer": "recforge.trainer.trainer:Trainer",
    "XGBoostTrainer": "recforge.trainer.tree:XGBoostTrainer",
}

# The module whose import registers the metrics (``register_metric``).
METRICS_MODULE = "recforge.evaluation.metrics"
