/* placeholder: config/schema.c */ typedef int wsgate_placeholder_schema;
