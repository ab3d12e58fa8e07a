import engagement.file_models  # noqa: F401 - issue 11: the files of inbound messages
import engagement.quality_models  # noqa: F401 - its tables join Base.metadata
import engagement.sop_models  # noqa: F401 - issue 13: groups, rules, pushes
from engagement.models import Base
from shared.migrate import run_env

run_env(Base.metadata)
