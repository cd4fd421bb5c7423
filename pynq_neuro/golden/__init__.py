"""Integer network and numpy golden model (numpy only; runs on the board)."""

from .model import GoldenResult, check_images, predict, run
from .network import IntegerNetwork, IntLayer, NetworkError

__all__ = ["GoldenResult", "IntLayer", "IntegerNetwork", "NetworkError", "check_images",
           "predict", "run"]
