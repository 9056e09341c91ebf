"""The ``wonkalytics dashboard`` web app (FastAPI + Jinja2 + Plotly, all served locally): see :mod:`.app`."""
