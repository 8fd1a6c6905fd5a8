"""omnissl-timeseries: the example plugin that docs/writing-a-plugin.md builds step by step."""
