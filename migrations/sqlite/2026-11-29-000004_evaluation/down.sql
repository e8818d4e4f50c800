DROP TABLE eval_scores;
DROP TABLE eval_votes;
DROP TABLE seats;
DROP TABLE evaluations;
DROP TABLE experts;
