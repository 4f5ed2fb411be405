"""Building blocks shared by model families."""

from .attention import SelfAttention
from .conditioning import LabelConcat, LabelProjection, label_maps
from .equalized import EqualizedConv2d, EqualizedLinear, PixelNorm
from .minibatch import MinibatchDiscrimination, MinibatchStdDev
from .normalization import ConditionalBatchNorm2d, spectral_norm
from .resblocks import DiscriminatorBlock, GeneratorBlock
from .style import ConstantInput, MappingNetwork, ModulatedConv2d, NoiseInjection

__all__ = [
    "ConditionalBatchNorm2d",
    "ConstantInput",
    "DiscriminatorBlock",
    "EqualizedConv2d",
    "EqualizedLinear",
    "GeneratorBlock",
    "LabelConcat",
    "LabelProjection",
    "MappingNetwork",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "ModulatedConv2d",
    "NoiseInjection",
    "PixelNorm",
    "SelfAttention",
    "label_maps",
    "spectral_norm",
]
