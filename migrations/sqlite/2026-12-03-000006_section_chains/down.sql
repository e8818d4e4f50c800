DROP TABLE log_chains;
