/* placeholder: config/units.c */ typedef int wsgate_placeholder_units;
