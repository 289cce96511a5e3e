"""One module per dataset, each holding its ``SPEC`` (tsfmicro.data.specs.DatasetSpec).

``SPECS`` is the list tsfmicro knows, in the order every listing shows them (parameters checks,
the command line's choices, messages). Adding a dataset: its module here, one line below, and
its test (ARCHITECTURE.md, "Add a dataset").
"""
from . import casme2, casme3, casme3_lv, casme_sq, megc2019, samm, samm_lv, smic

SPECS = (casme2.SPEC, samm.SPEC, casme3.SPEC, smic.SPEC, megc2019.SPEC)

# Long-video datasets (spotting; tsfmicro.data.long_videos reads them): listed apart from SPECS,
# whose every consumer (load_clips, prepare, the parameters' datasets:, plans) expects clips.
LONG_VIDEO_SPECS = (casme_sq.SPEC, samm_lv.SPEC, casme3_lv.SPEC)
