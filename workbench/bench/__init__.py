"""Benchmarks of the workbench itself: training/prediction speed and MFU beside plain keras-hub, accelerator
memory (largest batch), input-pipeline throughput, featurization throughput."""
