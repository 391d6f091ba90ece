FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY shared ./shared
COPY services ./services
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --create-home oneworkforce
USER oneworkforce

EXPOSE 8000
ENTRYPOINT ["oneworkforce"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
