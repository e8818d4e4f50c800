DROP TABLE publicity_objections;
DROP TABLE report_signatures;
DROP TABLE eval_scores;
DROP TABLE eval_votes;
DROP TABLE seats;
DROP TABLE evaluations;
DROP TABLE experts;
