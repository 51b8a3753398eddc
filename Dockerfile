# One image for web, worker, beat and the one-shot migrate service.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app && useradd --system --gid app --home /app app
WORKDIR /app

COPY requirements/ requirements/
RUN pip install -r requirements/base.txt

COPY . .
RUN DJANGO_SETTINGS_MODULE=config.settings SECRET_KEY=build-only \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var/prometheus && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py"]
