/* placeholder: gateway/snapshot.c */ typedef int wsgate_placeholder_snapshot;
