-- One database per service instance (each service owns its data; none reads another's tables).
-- Run once by the postgres image on an empty data volume, as POSTGRES_USER, who owns them.
-- Keep in step with the instances in docker-compose.yml (tests/unit/test_deploy_manifests.py checks).
CREATE DATABASE portal;
CREATE DATABASE intake_320583101;
CREATE DATABASE intake_320583102;
CREATE DATABASE approval_minzheng;
CREATE DATABASE approval_renshe;
CREATE DATABASE agent;
CREATE DATABASE notify;
CREATE DATABASE evaluation;
