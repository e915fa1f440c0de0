"""Write the weights entries of torchvision's ImageNet weights for the architectures with exact parity.

The entries are data (``compactnets/pretrained/NAME.tv*_in1k.json``): URL, the sha256 prefix torchvision puts in
the file name (all it publishes; torch.hub checks the same prefix), preprocessing, torchvision's reported
accuracy, and the converter. Everything is read from the installed torchvision's weights enums, so re-running
this after a torchvision upgrade refreshes them. ``tests/test_weights.py`` proves exact logits for each entry.

    python scripts/torchvision_weights.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torchvision
import torchvision.models as tvm

OUT = Path(__file__).resolve().parents[1] / "compactnets" / "pretrained"

# our name: (torchvision builder, its weights enum); the families tests/models prove torchvision parity for
ENTRIES = {
    "mobilenetv2_100": ("mobilenet_v2", tvm.MobileNet_V2_Weights),
    "mobilenetv3_large_100": ("mobilenet_v3_large", tvm.MobileNet_V3_Large_Weights),
    "mobilenetv3_small_100": ("mobilenet_v3_small", tvm.MobileNet_V3_Small_Weights),
    "efficientnet_b0": ("efficientnet_b0", tvm.EfficientNet_B0_Weights),
    "efficientnet_b1": ("efficientnet_b1", tvm.EfficientNet_B1_Weights),
    "efficientnet_b2": ("efficientnet_b2", tvm.EfficientNet_B2_Weights),
    "efficientnet_b3": ("efficientnet_b3", tvm.EfficientNet_B3_Weights),
    "densenet121": ("densenet121", tvm.DenseNet121_Weights),
    "resnext50_32x4d": ("resnext50_32x4d", tvm.ResNeXt50_32X4D_Weights),
    "shufflenetv2_050": ("shufflenet_v2_x0_5", tvm.ShuffleNet_V2_X0_5_Weights),
    "shufflenetv2_100": ("shufflenet_v2_x1_0", tvm.ShuffleNet_V2_X1_0_Weights),
    "shufflenetv2_150": ("shufflenet_v2_x1_5", tvm.ShuffleNet_V2_X1_5_Weights),
    "shufflenetv2_200": ("shufflenet_v2_x2_0", tvm.ShuffleNet_V2_X2_0_Weights),
    "squeezenet_10": ("squeezenet1_0", tvm.SqueezeNet1_0_Weights),
    "squeezenet_11": ("squeezenet1_1", tvm.SqueezeNet1_1_Weights),
}


def entry(model: str, builder: str, weights: tvm.WeightsEnum) -> dict:
    transforms = weights.transforms()
    crop, resize = transforms.crop_size[0], transforms.resize_size[0]
    file = weights.url.rsplit("/", 1)[1]
    version = weights.name.removeprefix("IMAGENET1K_")  # V1, V2
    metrics = weights.meta["_metrics"]["ImageNet-1K"]
    return {
        "model": model,
        "tag": "tv_in1k" if version == "V1" else f"tv{version[1:]}_in1k",
        "file": file,
        "sha256": re.search(r"-([a-f0-9]+)\.", file).group(1),  # the prefix torchvision publishes
        "classes": list(weights.meta["categories"]),
        "pretrained_cfg": {
            "input_size": [3, crop, crop],
            "resize_size": resize,
            "interpolation": transforms.interpolation.value,
            "crop_pct": round(crop / resize, 4),
            "mean": list(transforms.mean),
            "std": list(transforms.std),
        },
        "metrics": {
            "data": "ImageNet-1K validation set (50,000 images), single crop",
            "top1": metrics["acc@1"],
            "top5": metrics["acc@5"],
            "command": f"torchvision {torchvision.__version__}: {type(weights).__name__}.{weights.name} meta",
        },
        "source": "torchvision",
        "license": "BSD-3-Clause (torchvision's weights); ImageNet's terms of access apply to the training data",
        "url": weights.url,
        "converter": "torchvision",
        "model_kwargs": {},
        "training": {
            "recipe": weights.meta.get("recipe", ""),
            "num_params": weights.meta["num_params"],
            "torchvision_builder": builder,
        },
        "reference_logits": [],  # the file is not shipped: tests prove the mapping on torchvision's own format
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    count = 0
    for model, (builder, enum) in ENTRIES.items():
        for weights in enum:
            data = entry(model, builder, weights)
            (OUT / f"{model}.{data['tag']}.json").write_text(json.dumps(data, indent=1) + "\n")
            count += 1
    print(f"{count} torchvision entries -> {OUT}")


if __name__ == "__main__":
    main()
