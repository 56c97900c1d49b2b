"""Training: fine-tuning and two-phase pretraining on one resumable loop, pretraining-data creation, the
deterministic input streams and feature cache, and the device/strategy/precision switch."""
