# Import the real `shared` package before pytest's importlib mode can register the `shared/` folder
# under that name, and load the project's fixtures.
import shared  # noqa: F401

pytest_plugins = ["shared.testing"]
