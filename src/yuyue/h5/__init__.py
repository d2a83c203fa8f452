"""The mobile H5 booking app: Django templates + htmx over the same services as the API."""
