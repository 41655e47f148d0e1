-- Run by the image's entrypoint at the first start, as the official image runs
-- /docker-entrypoint-initdb.d/*.sql.
CREATE TABLE drills (id int PRIMARY KEY, target text NOT NULL);
INSERT INTO drills VALUES (1, 'orders'), (2, 'billing');
