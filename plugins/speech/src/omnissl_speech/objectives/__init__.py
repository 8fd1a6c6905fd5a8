"""Speech objectives, one per paper: TERA, wav2vec 2.0, HuBERT, w2v-BERT."""

from omnissl_speech.objectives.hubert import HuBERTConfig, HuBERTObjective
from omnissl_speech.objectives.tera import TERAConfig, TERAObjective
from omnissl_speech.objectives.w2v_bert import W2VBERTConfig, W2VBERTObjective
from omnissl_speech.objectives.wav2vec2 import Wav2Vec2ContrastiveConfig, Wav2Vec2Objective

__all__ = [
    "HuBERTConfig", "HuBERTObjective", "TERAConfig", "TERAObjective", "W2VBERTConfig", "W2VBERTObjective",
    "Wav2Vec2ContrastiveConfig", "Wav2Vec2Objective",
]
