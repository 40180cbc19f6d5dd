# Elided by the seed: the broker, and the import of re.
import re

broker_url = 'redis://localhost:6379/0'

# 配置路由
task_routes = {
    'tasks.process_image': {'queue': 'images'},
    'tasks.process_video': {'queue': 'videos'},
    'tasks.generate_report': {'queue': 'reports'},
    # 使用通配符
    'tasks.feed.*': {'queue': 'feeds'},
    # 使用正则表达式
    re.compile(r'(image|video)\.tasks\..*'): {'queue': 'media'},
}
