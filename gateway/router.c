/* placeholder: gateway/router.c */ typedef int wsgate_placeholder_router;
