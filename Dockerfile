# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
# Production image: actinia-core's official image (GRASS 8.4, the
# /api/v3/projects/... URLs) with actinia-module-plugin and this plugin,
# served by gunicorn. Versions: requirements/pins.txt, shared with
# scripts/install.sh (tests/unit/test_pins.py checks the base image tag).
#   docker build -t actinia-resume-plugin .
#   docker compose up -d     # valkey + API + two actinia-workers
# Config and endpoints CSV come from config/; mount your own over
# /etc/default/actinia and /etc/default/actinia_interim_endpoints.csv.
ARG ACTINIA_CORE_VERSION=7.1.2
FROM mundialis/actinia-core:${ACTINIA_CORE_VERSION}

ENV DEFAULT_CONFIG_PATH=/etc/default/actinia \
    PCTEMPLATES=/etc/default/actinia_pctemplates \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# GNU find lists the live mapset for every interim result saved (busybox
# find has no -printf; without it the plugin walks the mapset in Python,
# slower at many files). Alpine's current findutils: no version pin.
# hadolint ignore=DL3018
RUN apk add --no-cache findutils

WORKDIR /src/actinia-resume-plugin
COPY requirements/pins.txt requirements/pins.txt
COPY setup.py README.md ./
COPY src src
# Versions come from the constraints file (-c); actinia-core is the base
# image's and stays as it is.
RUN pip3 install -c requirements/pins.txt actinia-module-plugin gunicorn . \
    && python3 -c "import actinia_core, actinia_module_plugin, actinia_resume_plugin"

COPY config/actinia.docker.cfg /etc/default/actinia
COPY config/actinia_interim_endpoints.csv /etc/default/actinia_interim_endpoints.csv
COPY config/pctemplates /etc/default/actinia_pctemplates
RUN mkdir -p /actinia_core/grassdb /actinia_core/userdata \
        /actinia_core/resources /actinia_core/addons \
        /actinia_core/workspace/temp_db /actinia_core/workspace/tmp \
        /actinia_core/workspace/download_cache

VOLUME ["/actinia_core/grassdb", "/actinia_core/userdata", "/actinia_core/resources", "/actinia_core/workspace"]
EXPOSE 8088
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8088/api/v3/version', timeout=4).status != 200)"]
ENTRYPOINT []
CMD ["gunicorn", "-b", "0.0.0.0:8088", "-w", "4", "-k", "gthread", "--threads", "4", \
     "--timeout", "600", "--no-control-socket", "--access-logfile=-", \
     "actinia_core.main:flask_app"]
