-- Run by the postgres image once, when its data volume is empty (docker-compose.yml
-- mounts this folder at /docker-entrypoint-initdb.d). The services would also create
-- their database at start; creating both here makes "postgres is healthy" mean
-- "both databases exist". scripts/lint-deploy.sh checks these names against the
-- DATABASE_URLs in docker-compose.yml.
CREATE DATABASE payments;
CREATE DATABASE notifications;
