/* placeholder: config/load.c */ typedef int wsgate_placeholder_load;
