import engagement.quality_models  # noqa: F401 - its tables join Base.metadata
from engagement.models import Base
from shared.migrate import run_env

run_env(Base.metadata)
