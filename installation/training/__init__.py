"""The training side: aligned datasets, the pix2pix networks, the trainer and the ONNX exporter.

    dataset.py          build / read aligned input|target pairs (torch-free)
    record.py           record takes from a camera with a countdown
    networks.py         define_G / define_D: U-Net, ResNet, PatchGAN
    pix2pix_convert.py  checkpoints of the well-known pytorch pix2pix code
    train.py            TrainConfig, the trainer (single process or torchrun DDP), checkpoints
    export.py           checkpoint -> model.onnx + model.toml, checked against PyTorch
    cli.py              the `dataset`, `train` and `export` commands

Nothing here is imported by the live show; torch is needed only for train and export.
"""
