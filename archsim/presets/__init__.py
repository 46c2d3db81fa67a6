"""Architecture presets: one YAML file per machine, each citing its sources in comments.

Load them with :func:`archsim.load_arch` (``load_arch("h100")``); list them with
:func:`archsim.list_presets`.
"""
