"""Label-free monitors, probes and the probe runner."""
