"""The core's contract suite over every spec the medical plugin registers."""

from omnissl.plugins import PluginManager
from omnissl.testing.contracts import check_plugin


def test_medical_plugin_contracts():
    ran = check_plugin(PluginManager(), "medical")
    for name in ("encoder[medical.vit]", "encoder[medical.resnet]", "encoder[medical.swin]", "objective[medical.mae3d]",
                 "objective[medical.swin_ssl]", "objective[medical.global_local_contrast]", "config[medical.nifti]", "config[medical.auc_probe]"):
        assert name in ran


def test_every_dataset_is_built_from_its_example():
    ran = check_plugin(PluginManager(), "medical")
    for name in ('medical.medmnist3d', 'medical.nifti', 'medical.synthetic'):
        assert f"dataset[{name}]" in ran, name
