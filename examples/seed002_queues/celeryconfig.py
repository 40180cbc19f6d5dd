# Elided by the seed: the import of Queue and Exchange (kombu's, in Celery).
from celeriac import Exchange, Queue

CELERY_QUEUES = (
Queue('default', Exchange('default'), routing_key='default'),
Queue('for_task_A', Exchange('for_task_A'), routing_key='for_task_A'),
Queue('for_task_B', Exchange('for_task_B'), routing_key='for_task_B'),
)

CELERY_ROUTES = {
 'my_taskA': {'queue': 'for_task_A', 'routing_key': 'for_task_A'},
 'my_taskB': {'queue': 'for_task_B', 'routing_key': 'for_task_B'},
}
