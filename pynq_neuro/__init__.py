"""pynq-neuro: quantized time-delay neural networks for MNIST on the PYNQ-Z2.

Importing the package, its data loader, the golden model and the driver needs numpy only;
training, quantization and lowering (``pynq_neuro.quant``, ``pynq_neuro.train``,
``pynq_neuro.lower``) need torch.
"""

__version__ = "0.1.0"
