"""Wire the plugin's HTTP resources into actinia's flask API."""


def create_endpoints(flask_api):
    """Called by actinia-core after its own endpoints are registered."""
