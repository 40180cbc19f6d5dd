# Elided by the seed: the broker, and the import of crontab.
from celeriac.schedules import crontab

broker_url = 'redis://localhost:6379/0'

# 在配置中定义调度
beat_schedule = {
    'add-every-morning': {
        'task': 'tasks.add',
        'schedule': crontab(hour=7, minute=30),  # 每天早上7:30执行
        'args': (16, 16),
    },
    'clean-db-weekly': {
        'task': 'tasks.clean_database',
        'schedule': crontab(0, 0, day_of_week='sunday'),  # 每周日执行
    },
    'send-report-every-hour': {
        'task': 'tasks.send_report',
        'schedule': 3600.0,  # 每小时(秒)
    },
}
