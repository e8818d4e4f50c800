DROP TABLE draw_requests;
DROP TABLE draw_contributions;
