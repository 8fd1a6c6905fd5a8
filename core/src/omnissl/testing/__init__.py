"""The plugin author's test kit: fixtures, a toy modality and contract checks.

The ``omnissl`` distribution registers the fixtures (``plugin_manager``, ``bare_plugin_manager``,
``temporary_plugin``) through the ``pytest11`` entry point. Run the contract suite over every spec your
plugin registers with one test::

    from omnissl.testing.contracts import check_plugin

    def test_contracts(plugin_manager):
        check_plugin(plugin_manager, "tabular")

A modality's ``objectives`` are checked with its first encoder and first view generator unless the
modality spec maps an objective to another pair in ``objective_pairs``.
"""
