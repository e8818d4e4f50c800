DROP TABLE centre_registrations;
